"""Run the trained task-7 (pmp) model over the test traces: one CSV row per trace.

    python 02_test/tester7.py              # uses trainer7's demo output by default
    python 02_test/tester7.py --help
"""

from utrans.evaluate import tester_main

if __name__ == "__main__":
    tester_main("pmp")
