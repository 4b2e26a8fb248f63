"""Contact and company import: upload (CSV or XLSX), column mapping, dry run, a job, undo.

- models.py: the tenant tables imports and import_records (what each import created or changed).
- reading.py: decoding (detected or chosen), parsing, and guessing the mapping from the headers.
- services.py: validation, the batched upsert the job runs, undo, the error report.
"""
