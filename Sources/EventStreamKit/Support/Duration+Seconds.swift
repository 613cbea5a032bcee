extension Duration {
    /// The duration in seconds, as a `Double`: for scaling a delay, or handing it to an API
    /// that counts in seconds or nanoseconds.
    package var inSeconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}
