"""Run the trained task-10 (dis) model over the test traces: one CSV row per trace.

    python 02_test/tester10.py              # uses trainer10's demo output by default
    python 02_test/tester10.py --help
"""

from utrans.cli import script

if __name__ == "__main__":
    script("test", "dis")
