public enum GemelloVersion { public static let current = "0.1.0" }
