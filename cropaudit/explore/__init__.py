"""``cropaudit explore RUN``: a local, read-only web application over a finished run.

The estimates table with the run's findings, from an estimate to the composites behind it
(DuckDB over the run's Parquet, :mod:`.composites`), and a composite, or an image dropped on the
page, re-rendered and cropped by every cropper of the run (:mod:`.drawing`). The server is
:mod:`.app` (Starlette, served by uvicorn); the page's script and style are package data
(``static/``), so it works offline.
"""
