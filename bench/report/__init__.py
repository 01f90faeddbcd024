"""The report layer: statistics, selection, tables, figures, the collect CLI."""
