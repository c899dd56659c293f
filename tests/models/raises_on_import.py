raise RuntimeError("this file needs a GPU cluster")
