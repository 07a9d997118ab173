"""Predict event locations for the test traces (task 1): one CSV row per trace.

    python 02_test/tester1.py --max_d 114.5    # uses trainer1's demo output by default
"""

from utrans.cli import script

if __name__ == "__main__":
    script("test", "location")
