/// PopGate's version: the one place it is written. `popgate --version` prints it, and `make deb`
/// reads this line for the package version (Tests/packaging/check-deb.sh checks the two agree).
let popGateVersion = "0.1.0"
