"""Run the trained task-7 (pmp) model over the test traces: one CSV row per trace.

    python 02_test/tester7.py              # uses trainer7's demo output by default
    python 02_test/tester7.py --help
"""

from utrans.cli import script

if __name__ == "__main__":
    script("test", "pmp")
