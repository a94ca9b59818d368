from django.db import models


class Visit(models.Model):
    """One row per request to the front page, so the page proves migrate ran."""

    path = models.CharField(max_length=200)
    created = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return "{} at {}".format(self.path, self.created)
