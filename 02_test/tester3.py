"""Run the trained task-3 (polarity) model over the test traces: one CSV row per trace.

    python 02_test/tester3.py              # uses trainer3's demo output by default
    python 02_test/tester3.py --help
"""

from utrans.evaluate import tester_main

if __name__ == "__main__":
    tester_main("polarity")
