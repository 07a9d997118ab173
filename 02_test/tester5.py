"""Run the trained task-5 (s_pick) model over the test traces: one CSV row per trace.

    python 02_test/tester5.py              # uses trainer5's demo output by default
    python 02_test/tester5.py --help
"""

from utrans.cli import script

if __name__ == "__main__":
    script("test", "s_pick")
