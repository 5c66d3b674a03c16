#!/usr/bin/env python3
"""A Modbus TCP device for the modbus input's tests: pymodbus playing a telecom rectifier.

    server.py PORT [--silent] [--level]

Registers (PDU addresses, 0-based), what a -48 V DC plant's controller shows:
  holding 0      uint16  output voltage, 0.01 V      5350 -> 53.50 V
  holding 1      int16   battery current, 0.1 A      -125 -> -12.5 A (discharging)
  holding 2-3    float32 load power, W, big-endian word order      1234.5
  holding 4-5    float32 load power again, little word order (CDAB) 1234.5
  holding 10-11  uint32  energy counter, Wh          70000
  holding 12-15  float64 battery temperature, degC  23.25
  input 0        uint16  rectifier count             3
  coil 0         bool    mains present               1
  discrete 1     bool    alarm                       0 (discrete 0 is 1)
--silent accepts connections and never answers (a device that hangs).
--level plays a sewer level sensor instead (a fibre node's): input registers
  input 0        uint16  water level, mm             1250
  input 1-2      float32 flow, m3/h                  42.5
  discrete 0     bool    overflow alarm              0
"""
import socket
import struct
import sys
import threading


def words_float32(value, little_words=False):
    hi, lo = struct.unpack(">HH", struct.pack(">f", value))
    return [lo, hi] if little_words else [hi, lo]


def main():
    port = int(sys.argv[1])
    if "--silent" in sys.argv:
        listener = socket.create_server(("127.0.0.1", port))
        print("ready", flush=True)
        held = []
        while True:
            connection, _ = listener.accept()
            held.append(connection)  # never read, never answered
    from pymodbus.datastore import ModbusDeviceContext, ModbusSequentialDataBlock, ModbusServerContext
    from pymodbus.server import StartTcpServer

    if "--level" in sys.argv:
        device = ModbusDeviceContext(
            hr=ModbusSequentialDataBlock(1, [0] * 10),
            ir=ModbusSequentialDataBlock(1, [1250] + words_float32(42.5) + [0] * 7),
            co=ModbusSequentialDataBlock(1, [0] * 10),
            di=ModbusSequentialDataBlock(1, [0] * 10),
        )
        threading.Timer(0.5, lambda: print("ready", flush=True)).start()
        StartTcpServer(context=ModbusServerContext(devices=device, single=True), address=("127.0.0.1", port))
        return
    holding = [0] * 20
    holding[0] = 5350
    holding[1] = struct.unpack(">H", struct.pack(">h", -125))[0]
    holding[2:4] = words_float32(1234.5)
    holding[4:6] = words_float32(1234.5, little_words=True)
    holding[10:12] = [70000 >> 16, 70000 & 0xFFFF]
    holding[12:16] = list(struct.unpack(">HHHH", struct.pack(">d", 23.25)))
    # pymodbus's data blocks are addressed one above the PDU address: a block starting at 1
    # serves PDU address 0.
    device = ModbusDeviceContext(
        hr=ModbusSequentialDataBlock(1, holding),
        ir=ModbusSequentialDataBlock(1, [3] + [0] * 9),
        co=ModbusSequentialDataBlock(1, [1] + [0] * 9),
        di=ModbusSequentialDataBlock(1, [1, 0] + [0] * 8),
    )
    threading.Timer(0.5, lambda: print("ready", flush=True)).start()
    StartTcpServer(context=ModbusServerContext(devices=device, single=True), address=("127.0.0.1", port))


if __name__ == "__main__":
    main()
