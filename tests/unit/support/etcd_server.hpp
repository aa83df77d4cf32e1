// A real etcd (Debian's etcd-server, /usr/bin/etcd or $ETCD_BINARY) for unit
// tests: started on two free loopback ports in a temporary data dir, stopped
// and removed with the object. etcd refuses port 0, so the ports are picked
// first (bound by the kernel, released, then handed to etcd).
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace billing::testing {

inline uint16_t free_loopback_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  socklen_t length = sizeof address;
  ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  ::close(fd);
  return ntohs(address.sin_port);
}

inline bool port_accepts(uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(port);
  const bool accepted = ::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
  ::close(fd);
  return accepted;
}

class etcd_server {
 public:
  etcd_server()
      : dir_(std::filesystem::temp_directory_path() /
             ("billing-etcd-" + std::to_string(::getpid()) + "-" +
              std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()))),
        client_port_(free_loopback_port()),
        peer_port_(free_loopback_port()) {
    std::filesystem::create_directories(dir_);
    start();
  }
  ~etcd_server() {
    stop();
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
  etcd_server(const etcd_server&) = delete;
  etcd_server& operator=(const etcd_server&) = delete;

  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(client_port_); }
  uint16_t client_port() const { return client_port_; }

  // Starts etcd (again, on the same ports and data) and waits for it.
  void start() {
    const char* binary = std::getenv("ETCD_BINARY");
    const std::string etcd = binary ? binary : "/usr/bin/etcd";
    const std::string client = "http://127.0.0.1:" + std::to_string(client_port_);
    const std::string peer = "http://127.0.0.1:" + std::to_string(peer_port_);
    std::vector<std::string> args = {etcd,
                                     "--name=test",
                                     "--data-dir=" + (dir_ / "data").string(),
                                     "--listen-client-urls=" + client,
                                     "--advertise-client-urls=" + client,
                                     "--listen-peer-urls=" + peer,
                                     "--initial-advertise-peer-urls=" + peer,
                                     "--initial-cluster=test=" + peer};
    std::vector<char*> argv;
    for (auto& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);
    // etcd's log goes to a file in its dir, not into the test's output.
    const std::string log = (dir_ / "etcd.log").string();
    posix_spawn_file_actions_t files;
    posix_spawn_file_actions_init(&files);
    posix_spawn_file_actions_addopen(&files, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&files, 1, 2);
    const int spawned = ::posix_spawn(&pid_, etcd.c_str(), &files, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&files);
    if (spawned != 0) throw std::runtime_error("cannot start " + etcd);
    for (int waited = 0; waited < 200; ++waited) {
      if (port_accepts(client_port_)) {
        // The port opens slightly before etcd serves: give it a moment.
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    throw std::runtime_error("etcd did not open its client port; see " + dir_.string());
  }

  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    int ignored = 0;
    ::waitpid(pid_, &ignored, 0);
    pid_ = 0;
  }

 private:
  std::filesystem::path dir_;
  uint16_t client_port_;
  uint16_t peer_port_;
  pid_t pid_ = 0;
};

}  // namespace billing::testing
