"""Where a measurement was made: device name, torch version, git commit and date (for results files)."""
import os
import platform
import subprocess
import time

import torch


def metadata(device):
    """{'device', 'torch', 'commit', 'date'} for results measured on ``device`` (a torch.device)."""
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                cwd=os.path.dirname(__file__)).stdout.strip() or "unknown"
    except OSError:
        commit = "unknown"
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else \
        f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
    return dict(device=name, torch=torch.__version__, commit=commit, date=time.strftime("%Y-%m-%d"))
