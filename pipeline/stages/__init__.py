"""The image stages: arrays and tables in, arrays and tables out; no file I/O."""
