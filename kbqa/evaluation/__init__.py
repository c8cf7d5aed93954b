"""Answer-quality evaluation: scores of what a knowledge-base chat answers, against a set of expected answers."""
