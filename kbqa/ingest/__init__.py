"""File → documents → chunks → vectors."""
