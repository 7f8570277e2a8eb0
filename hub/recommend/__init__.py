"""Recommendations that learn from listening: implicit-feedback ALS trained in a worker
process, content features measured at ingest, a blend ranked per listener under the
rules listeners ask for, the Weekly Mix, radio, and their offline evaluation."""
