"""Task: 68 facial keypoints, one module per DVC stage, plus the point schema."""
