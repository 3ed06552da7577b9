"""`python -m catalog.sources.child`: the isolated reader's process (catalog.sources.isolation
starts it with TAZA_READER_ZYGOTE=off; catalog.sources.reader serves its one request). The
zygote (catalog.sources.zygote) imports this module before it forks its children, so they have
the same block.

Before anything else it makes `import boto3` fail. The child has no network, so rasterio's AWS
sessions are never used, yet rasterio imports boto3 when it is installed (the object-storage
profile installs it): 0.1 s of a reader's 0.55 s start, paid by every upload, validation and
publish, and one network client less inside the process that reads hostile files.
"""

import sys

sys.modules["boto3"] = None  # an import of it now raises ImportError

from catalog.sources import reader  # noqa: E402  (after the line above, on purpose)

if __name__ == "__main__":
    reader.main()
