"""Run the trained task-4 (p_pick) model over the test traces: one CSV row per trace.

    python 02_test/tester4.py              # uses trainer4's demo output by default
    python 02_test/tester4.py --help
"""

from utrans.cli import script

if __name__ == "__main__":
    script("test", "p_pick")
