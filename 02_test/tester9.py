"""Run the trained task-9 (baz) model over the test traces: one CSV row per trace.

    python 02_test/tester9.py              # uses trainer9's demo output by default
    python 02_test/tester9.py --help
"""

from utrans.cli import script

if __name__ == "__main__":
    script("test", "baz")
