"""Location metrics (lat/lon/epicentral/depth errors) and figures from tester1's CSV (task 1).

    python 03_read/reader1.py
"""

from utrans.evaluate import reader_main

if __name__ == "__main__":
    reader_main("location")
