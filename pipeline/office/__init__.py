"""The Office files the pipeline reads and writes, made safe against hostile content.

- `text`: control characters out of text at the boundary, and what Excel would take for
  a formula;
- `xlsx`: the one writer helper every workbook goes through (text cells, never formulas;
  validated before it is saved);
- `archive`: an .xlsx checked before it is parsed (zip bombs, huge rows and cells, DTDs,
  password-protected files);
- `xml`: well-formedness of generated parts (DOCX and XLSX) before they leave.
"""
