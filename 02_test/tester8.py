"""Run the trained task-8 (emg) model over the test traces: one CSV row per trace.

    python 02_test/tester8.py              # uses trainer8's demo output by default
    python 02_test/tester8.py --help
"""

from utrans.cli import script

if __name__ == "__main__":
    script("test", "emg")
