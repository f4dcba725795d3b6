# A Dockerfile with one mistake of each kind the rules catch.
FROM debian:latest
ADD https://example.com/models.tar.gz /models/
RUN apt-get install -y g++ libfoo-dev
RUN wget -O /tmp/x https://example.com/x
ENV FACELOGIN_PIN_PEPPER=hunter2
COPY bin/facelogin /usr/local/bin/facelogin
USER root
EXPOSE 80
ENTRYPOINT /usr/local/bin/facelogin
CMD ["api"]
