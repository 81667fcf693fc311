{
  "variables": {
    "have_libdeflate%": "<!(test -f /usr/include/libdeflate.h && echo 1 || echo 0)",
    "have_isal%": "<!(test -f /usr/include/isa-l/igzip_lib.h && echo 1 || echo 0)"
  },
  "targets": [
    {
      "target_name": "lading_mount",
      "sources": ["mount.c"],
      "cflags": ["-O2", "-Wall", "-Wextra"]
    }
  ],
  "conditions": [
    [
      "have_libdeflate==1",
      {
        "targets": [
          {
            "target_name": "lading_gzip",
            "sources": ["gzip_member.c"],
            "cflags": ["-O2", "-Wall", "-Wextra"],
            "libraries": ["-ldeflate", "-lm"]
          }
        ]
      }
    ],
    [
      "have_isal==1",
      {
        "targets": [
          {
            "target_name": "lading_inflate",
            "sources": ["inflate.c"],
            "cflags": ["-O2", "-Wall", "-Wextra"],
            "libraries": ["-lisal"]
          }
        ]
      }
    ]
  ]
}
