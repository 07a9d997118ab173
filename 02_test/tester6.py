"""Run the trained task-6 (dpk) model over the test traces: one CSV row per trace.

    python 02_test/tester6.py              # uses trainer6's demo output by default
    python 02_test/tester6.py --help
"""

from utrans.cli import script

if __name__ == "__main__":
    script("test", "dpk")
