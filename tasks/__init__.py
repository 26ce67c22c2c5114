"""Celery tasks: thin entry points that call services. ``celery -A tasks.worker`` starts them."""
