import FuzzDriver

runFuzzer { data, size in wireFuzz(data, size) }
