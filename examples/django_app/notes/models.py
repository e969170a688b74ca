"""A model: Django registers models once, at start-up, so an edit here restarts."""

from django.db import models


class Note(models.Model):
    text = models.CharField(max_length=200)
