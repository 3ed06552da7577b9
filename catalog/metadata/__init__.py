"""Metadata writers: DCAT-AP 3 with GeoDCAT-AP's spatial properties (rdflib) and ISO 19139
(pygeometa), from published records. No web code here: catalog/discovery serves them."""
