"""Run the trained task-2 (magnitude) model over the test traces: one CSV row per trace.

    python 02_test/tester2.py              # uses trainer2's demo output by default
    python 02_test/tester2.py --help
"""

from utrans.cli import script

if __name__ == "__main__":
    script("test", "magnitude")
