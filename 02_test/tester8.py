"""Run the trained task-8 (emg) model over the test traces: one CSV row per trace.

    python 02_test/tester8.py              # uses trainer8's demo output by default
    python 02_test/tester8.py --help
"""

from utrans.evaluate import tester_main

if __name__ == "__main__":
    tester_main("emg")
