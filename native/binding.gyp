{
  "targets": [
    {
      "target_name": "lading_gzip",
      "sources": ["gzip_member.c"],
      "cflags": ["-O2", "-Wall", "-Wextra"],
      "libraries": ["-ldeflate", "-lm"]
    },
    {
      "target_name": "lading_mount",
      "sources": ["mount.c"],
      "cflags": ["-O2", "-Wall", "-Wextra"]
    }
  ]
}
