"""Location metrics (lat/lon/epicentral/depth errors) and figures from tester1's CSV (task 1).

    python 03_read/reader1.py
"""

from utrans.cli import script

if __name__ == "__main__":
    script("read", "location")
