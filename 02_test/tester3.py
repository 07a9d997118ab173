"""Run the trained task-3 (polarity) model over the test traces: one CSV row per trace.

    python 02_test/tester3.py              # uses trainer3's demo output by default
    python 02_test/tester3.py --help
"""

from utrans.cli import script

if __name__ == "__main__":
    script("test", "polarity")
