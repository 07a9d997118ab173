"""Run the trained task-9 (baz) model over the test traces: one CSV row per trace.

    python 02_test/tester9.py              # uses trainer9's demo output by default
    python 02_test/tester9.py --help
"""

from utrans.evaluate import tester_main

if __name__ == "__main__":
    tester_main("baz")
