{
  "targets": [
    {
      "target_name": "lading_gzip",
      "sources": ["gzip_member.c"],
      "defines": ["COPY_IN_COMPLETE"], "cflags": ["-O2", "-Wall", "-Wextra"],
      "libraries": ["-ldeflate"]
    }
  ]
}
