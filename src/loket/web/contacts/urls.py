from django.urls import path

from loket.web.contacts import views

urlpatterns = [
    path("", views.index, name="index"),
    path("duplicates/", views.duplicates, name="duplicates"),
    path("<int:pk>/", views.detail, name="detail"),
    path("<int:pk>/edit/", views.edit, name="edit"),
    path("<int:pk>/merge/", views.merge, name="merge"),
    path("<int:pk>/block/", views.block, name="block"),
    path("<int:pk>/remote-images/", views.remote_images, name="remote_images"),
    path("merges/<int:merge_id>/undo/", views.undo_merge, name="undo_merge"),
]
