"""Data exchange: files in and out of any model, through its service.

`fields` says which columns travel and under which headers; `reading` turns
an uploaded file into rows (refusing bad files); `writing` streams rows out
as CSV, XLSX or JSON; `exporting` reads a filtered list for an actor, masked;
`importing` previews and confirms a file through the model's service.
"""
