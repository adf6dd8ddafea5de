{
  "schema": "edgemod.signature/1",
  "algorithm": "ed25519",
  "key_id": "ec0f9336532d72b7",
  "signed_sha256": "6324aeb775ebd0665947729c7d5955111c08346d441e4985e1a1870845039fb4",
  "signature": "HUv5q5WRUSGm33w8/PbT3PT9p4/aw+Q/oXstpiH//8aPV269n+ZHgI8tNOT+HwvpsCvlbkBJH47fOJANjBXPAA=="
}
