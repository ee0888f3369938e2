#!/usr/bin/env python3
"""INCRBYFLOAT against real Redis: random chains of SET + 1-4 INCRBYFLOATs + GET sent to two
servers, every reply compared byte for byte. Traffic goes to loopback only, a bounded number
of commands.

    redis-server --port 27999 --save '' --appendonly no &
    cargo run --release -- serve --kv 127.0.0.1:27998 &
    scripts/kv_float_diff.py SEED OURS_PORT REDIS_PORT [CASES]    # e.g. 1 27998 27999 5000

The inputs mix plain decimals (to 25 digits either side of the point), exponents up to +-4960
(past the long double's range both ways), small fractions, hexadecimal floats with binary
exponents to the subnormal range, 64-bit integers and the special texts (inf, nan, '', ' 1',
'1e', '1.19e4932', '3.6e-4951', ...). Exit status 1 if any reply differs; the first ten
differences are printed.
"""
import socket, random, sys
def conn(port):
    s=socket.create_connection(("127.0.0.1",port)); return s
def enc(*args):
    out=b"*%d\r\n"%len(args)
    for a in args:
        if isinstance(a,str): a=a.encode()
        out+=b"$%d\r\n%s\r\n"%(len(a),a)
    return out
def readreply(f):
    line=f.readline()
    if line[:1]==b"$":
        n=int(line[1:])
        if n<0: return line
        return line+f.read(n+2)
    return line
def ask(s,f,*args):
    s.sendall(enc(*args)); return readreply(f)
rnd=random.Random(int(sys.argv[1]) if len(sys.argv)>1 else 1)
def rfloat():
    k=rnd.random()
    sign=rnd.choice(["","","-","+"])
    if k<0.3:
        ip=str(rnd.randint(0,10**rnd.randint(0,25)))
        fp=''.join(rnd.choice("0123456789") for _ in range(rnd.randint(0,25)))
        s=ip+("."+fp if fp or rnd.random()<0.2 else "")
        return sign+s
    if k<0.55:
        m=str(rnd.randint(1,10**rnd.randint(1,22)))
        if rnd.random()<0.5: m=m[:1]+"."+m[1:]
        return sign+m+rnd.choice("eE")+rnd.choice(["","-","+"])+str(rnd.randint(0,rnd.choice([5,30,400,4940,4960])))
    if k<0.7:
        return sign+"0."+"0"*rnd.randint(0,20)+str(rnd.randint(1,999999))
    if k<0.8:
        h=''.join(rnd.choice("0123456789abcdefABCDEF") for _ in range(rnd.randint(1,20)))
        if rnd.random()<0.5: p=rnd.randint(0,len(h)); h=h[:p]+"."+h[p:]
        e=rnd.choice(["","p"+str(rnd.randint(-100,100)),"P-"+str(rnd.randint(0,16500)),"p+"+str(rnd.randint(0,16400))])
        return sign+rnd.choice(["0x","0X"])+h+e
    if k<0.9:
        return sign+str(rnd.randint(-10**18,10**18))
    return rnd.choice(["inf","-inf","nan","1e","1e+",".","","0x","1.5.5","  1","1 ","-0","0.0","1e-4951","3.6e-4951","1.18e4932","1.19e4932","0.1","0.2","1e-18","5e-18","0.5e-17"])
a=conn(int(sys.argv[2])); af=a.makefile("rb")
b=conn(int(sys.argv[3])); bf=b.makefile("rb")
n=int(sys.argv[4]) if len(sys.argv)>4 else 2000
bad=0
for i in range(n):
    start=rfloat()
    seq=[rfloat() for _ in range(rnd.randint(1,4))]
    ra=[ask(a,af,"SET","k",start)]; rb=[ask(b,bf,"SET","k",start)]
    for inc in seq:
        ra.append(ask(a,af,"INCRBYFLOAT","k",inc)); rb.append(ask(b,bf,"INCRBYFLOAT","k",inc))
    ra.append(ask(a,af,"GET","k")); rb.append(ask(b,bf,"GET","k"))
    if ra!=rb:
        bad+=1
        if bad<=10: print("DIFF start=%r seq=%r\n  ours=%r\n  redis=%r"%(start,seq,[x[:120] for x in ra],[x[:120] for x in rb]))
print("cases",n,"diffs",bad)
sys.exit(1 if bad else 0)
