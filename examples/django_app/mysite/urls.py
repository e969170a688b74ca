"""URLs: add a path and it is served at once (relive clears Django's URL caches)."""

from django.urls import path
from notes import views

urlpatterns = [
    path("", views.index),
    path("page/", views.page),
]
