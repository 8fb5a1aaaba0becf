print("vmlab")
