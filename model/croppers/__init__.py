"""Third-party croppers audited by name (``--model smartcrop``): their packages come with the
optional ``croppers`` extra (``pip install 'cropaudit[croppers]'``)."""
