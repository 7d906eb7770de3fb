print("check: gitlab: (pending)")
