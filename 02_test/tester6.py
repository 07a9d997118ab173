"""Run the trained task-6 (dpk) model over the test traces: one CSV row per trace.

    python 02_test/tester6.py              # uses trainer6's demo output by default
    python 02_test/tester6.py --help
"""

from utrans.evaluate import tester_main

if __name__ == "__main__":
    tester_main("dpk")
