"""What a person looks at: the QC figure, review pictures and pages, the report."""
