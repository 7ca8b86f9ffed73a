"""Task-independent fine-tuning: init checkpoint, recipes, data-parallel step, seeds loop.

glue/ and squad/ each supply a task (model head, losses, evaluation, export) to seeds.run.
"""
