# What the 32-bit VM is: sys.maxsize, and the bytes one int of 2**30 + 1 costs.
import gc
import sys

x = 0x3FFFFFFF
gc.disable()
a = gc.mem_alloc()
y = x + 2
print(sys.maxsize, gc.mem_alloc() - a)
