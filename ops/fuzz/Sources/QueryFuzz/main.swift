import GemelloCore
import FuzzDriver

runFuzzer { data, size in queryFuzz(data, size) }
