"""Where a CycleGAN 256 training step and a resnet_9 translate batch spend GPU time (torch.profiler)."""
import sys, time
sys.path.insert(0, "bench")
import torch
from torch.profiler import profile, ProfilerActivity
from train_speed import make

torch.backends.cudnn.benchmark = True
dev = torch.device("cuda")
for prec, cl, batch in (("bf16", True, 8), ("fp32", False, 8), ("bf16", False, 8)):
    method, data = make(dev, 256, batch, prec, cl, False)
    for i in range(3):
        method.train_step(data, i)
    torch.cuda.synchronize()
    t0 = time.time()
    with profile(activities=[ProfilerActivity.CUDA, ProfilerActivity.CPU]) as p:
        for i in range(3):
            method.train_step(data, i)
        torch.cuda.synchronize()
    wall = (time.time() - t0) / 3
    ev = p.key_averages()
    cuda_total = sum(e.self_device_time_total for e in ev) / 3 / 1e6
    print(f"PROF cyclegan {prec} cl={cl} b{batch}: wall {wall*1e3:.1f} ms/step, GPU busy {cuda_total*1e3:.1f} ms/step")
    for e in sorted(ev, key=lambda e: -e.self_device_time_total)[:14]:
        if e.self_device_time_total:
            print(f"PROF   {e.self_device_time_total/3/1e3:8.2f} ms  x{e.count//3:4d}  {e.key[:110]}")
    del method, data
    torch.cuda.empty_cache()
